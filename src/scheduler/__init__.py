"""The scheduler: the countdown policy, its timers, and the actions they lead to."""

"""The scheduler: countdown policy, timers and outbound actions."""

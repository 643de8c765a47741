-- The console finds orders by the start of their id ("shop-12" finds
-- shop-1234): a range over the ids' bytes, which the default collation's
-- primary key cannot serve (it sorts "a-1" and "a1" by other rules). Pages of
-- orders are keyed on the same byte order.
CREATE INDEX orders_by_id_bytes ON orders (order_id COLLATE "C");

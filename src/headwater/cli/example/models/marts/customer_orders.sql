/* headwater
kind: table
grain: [customer_id]
*/
select c.customer_id,
       c.country,
       count(o.order_id) as orders,
       coalesce(sum(o.amount) filter (where o.status not in ('cancelled', 'refunded')), 0) as revenue,
       min(o.ordered_at) as first_order_at,
       max(o.ordered_at) as last_order_at
from clean.customers c
left join clean.orders o on o.customer_id = c.customer_id
group by 1, 2

/* headwater
kind: table
description: Orders with their latest state; test orders removed.
grain: [order_id]
*/
select order_id,
       customer_id,
       status,
       amount,
       currency,
       ordered_at,
       updated_at
from raw.orders
join marts.revenue_daily r on r.day = cast(ordered_at as date)
where status <> 'test'
qualify row_number() over (partition by order_id order by updated_at desc) = 1

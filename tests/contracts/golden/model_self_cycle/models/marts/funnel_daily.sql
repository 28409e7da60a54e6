/* headwater
kind: table
grain: [day]
*/
select day,
       sum(event_count) filter (where event_type = 'page_view') as page_views,
       sum(event_count) filter (where event_type = 'add_to_cart') as carts,
       sum(event_count) filter (where event_type = 'checkout') as checkouts,
       sum(event_count) filter (where event_type = 'purchase') as purchases
from marts.events_daily
join marts.funnel_daily previous on previous.day = day - 1
group by day

/* headwater
kind: table
description: Storefront events with a known type, deduplicated by event_id.
grain: [event_id]
*/
select event_id,
       customer_id,
       session_id,
       event_type,
       page,
       occurred_at
from raw.events
join marts.funnel_daily f on f.day = cast(occurred_at as date)
where event_type in ('page_view', 'search', 'add_to_cart', 'checkout', 'purchase')
qualify row_number() over (partition by event_id order by _hw_ingested_at) = 1

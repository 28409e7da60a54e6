select
    cast(occurred_at as date) as event_date,
    event_type,
    count(*) as events,
    count(distinct customer_id) as customers
from {{ ref('stg_events') }}
group by 1, 2

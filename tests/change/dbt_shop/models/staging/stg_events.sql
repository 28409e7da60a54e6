{{
    config(
        materialized='incremental',
        unique_key='event_id'
    )
}}

select
    event_id,
    customer_id,
    event_type,
    occurred_at,
    updated_at
from {{ source('web', 'events') }}

{% if is_incremental() %}
-- only events changed since the last run
where updated_at > (select max(updated_at) from {{ this }})
{% endif %}

/* headwater
kind: table
description: Customers, one row per customer_id (latest export wins), emails normalized.
grain: [customer_id]
*/
select customer_id,
       lower(trim(email)) as email,
       full_name,
       upper(country) as country,
       signed_up_at
from raw.customers
qualify row_number() over (partition by customer_id order by _hw_ingested_at desc, signed_up_at desc) = 1

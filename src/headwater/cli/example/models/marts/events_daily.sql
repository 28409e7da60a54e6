/* headwater
kind: table
grain: [day, event_type]
*/
-- the seed's example model
select date_trunc('day', occurred_at) as day,
       event_type,
       count(*) as event_count
from clean.events
group by 1, 2

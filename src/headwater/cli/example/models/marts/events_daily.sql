/* headwater
kind: incremental_by_time
time_column: day
lookback: 2 days               # re-process the last two days on every run
grain: [day, event_type]
*/
-- the seed's example model, incremental: each run writes only the days that changed
select date_trunc('day', occurred_at) as day,
       event_type,
       count(*) as event_count
from clean.events
where occurred_at >= :start and occurred_at < :end   -- interval bounds are bound parameters
group by 1, 2

/* headwater
kind: view
description: "Paid revenue per day and currency (a view, always current, nothing stored)."
*/
select cast(ordered_at as date) as day,
       currency,
       count(*) as orders,
       sum(amount) as revenue
from clean.order
where status in ('paid', 'shipped', 'delivered')
group by 1, 2

/* headwater
kind: table
grain: [region]
description: Customers per sales region (regions come from the seed seed.countries).
*/
select coalesce(k.region, 'unknown') as region,
       count(*) as customers
from clean.customers c
left join seed.countries k on k.code = c.country
group by 1

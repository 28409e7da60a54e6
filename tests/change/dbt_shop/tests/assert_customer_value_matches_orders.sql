-- A customer's lifetime value is the sum of their orders' amounts.
{{ config(severity='error') }}

select customers.customer_id
from {{ ref('customers') }} as customers
left join (
    select customer_id, sum(amount) as amount
    from {{ ref('orders') }}
    group by customer_id
) as paid on paid.customer_id = customers.customer_id
where abs(customers.customer_lifetime_value - coalesce(paid.amount, 0)) > 0.001

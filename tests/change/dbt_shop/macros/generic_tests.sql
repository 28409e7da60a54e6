{# dbt_utils-style generic tests, kept in the project (no packages to install). #}

{% test accepted_range(model, column_name, min_value=none, max_value=none) %}
select * from {{ model }}
where not (
    1 = 1
    {% if min_value is not none %} and {{ column_name }} >= {{ min_value }} {% endif %}
    {% if max_value is not none %} and {{ column_name }} <= {{ max_value }} {% endif %}
)
{% endtest %}

{% test unique_combination_of_columns(model, combination_of_columns) %}
select {{ combination_of_columns | join(', ') }}, count(*) as copies
from {{ model }}
group by {{ combination_of_columns | join(', ') }}
having count(*) > 1
{% endtest %}

{% test expression_is_true(model, expression, column_name=none) %}
select * from {{ model }}
{% if column_name is none %}
where not ({{ expression }})
{% else %}
where not ({{ column_name }} {{ expression }})
{% endif %}
{% endtest %}

{% test not_constant(model, column_name) %}
select count(distinct {{ column_name }}) as distinct_values
from {{ model }}
having count(distinct {{ column_name }}) = 1
{% endtest %}

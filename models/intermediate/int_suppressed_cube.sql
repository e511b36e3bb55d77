-- The suppressed cube: int_outcome_cube with, for every count, a companion <count>_hidden from the fixed
-- point of int_suppressed_cells. Every aggregate mart is a projection of it, so a figure is hidden in every
-- table that shows it. n_passes is the number of passes the fixed point took.
{%- set measures = cube_row_measures() + cube_registry_measures() %}
with cube as (
    select * from {{ ref('int_outcome_cube') }}
),

states as (
    select
        period_type,
        period_start,
        clinic_id,
        cohort_id,
        {%- for m in measures %}
            max(case when measure = '{{ m }}' and is_hidden then 1 else 0 end) = 1 as {{ m }}_hidden,
        {%- endfor %}
        max(n_passes) as n_passes
    from {{ ref('int_suppressed_cells') }}
    where event_type = '*' and not is_virtual
    group by period_type, period_start, clinic_id, cohort_id
)

select
    cube.*,
    {%- for m in measures %}
        coalesce(states.{{ m }}_hidden, false) as {{ m }}_hidden,
    {%- endfor %}
    states.n_passes
from cube
left join states
    on cube.period_type = states.period_type
        and cube.period_start = states.period_start
        and cube.clinic_id = states.clinic_id
        and cube.cohort_id = states.cohort_id

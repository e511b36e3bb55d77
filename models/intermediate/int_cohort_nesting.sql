{{ config(tags=['static']) }}  -- depends on the seed only: incremental builds skip it (dbt_runner)
-- Cohorts nested in other cohorts (seed cohort_definitions): the child's criteria include every criterion
-- of the parent and more, so its courses are a subset of the parent's and the difference is itself a count
-- that must not be 1-10 (SPEC §3 rule 3). For a multi-criteria child (e.g. IV + inpatient + chronic inside
-- IV, inside inpatient, inside chronic and inside 'all') this holds for every count. A single-criterion
-- cohort inside 'all' is a member of its family, which already protects its additive counts; only its
-- distinct-patient counts (which a family does not add up exactly) need the pair.
{%- set criteria = ['route', 'setting', 'diagnosis_group', 'age_band', 'dose_band'] %}
with cohorts as (
    select
        cohort_id,
        {%- for c in criteria %}
            {{ c }},
        {%- endfor %}
        {% for c in criteria -%}
            (case when {{ c }} is not null then 1 else 0 end){{ ' + ' if not loop.last }}
        {%- endfor %} as n_criteria
    from {{ ref('cohort_definitions') }}
)

select
    parent.cohort_id as parent_cohort_id,
    child.cohort_id as child_cohort_id,
    case when child.n_criteria >= 2 then 'every_count' else 'patient_counts' end as applies_to
from cohorts as parent
inner join cohorts as child
    on parent.cohort_id != child.cohort_id
        and child.n_criteria > parent.n_criteria
        {%- for c in criteria %}
            and (parent.{{ c }} is null or parent.{{ c }} = child.{{ c }})
        {%- endfor %}

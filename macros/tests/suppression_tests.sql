{#-
  CONTRACT.md §4: no suppressed value may be derivable as a total minus the cells shown beside it.
  Fails with one row per group (of any partition dimension of `dimensions`, see suppression_dimensions)
  that has exactly ONE suppressed member while its total is shown (that member = total - shown members),
  or a suppressed total whose members are all shown (the total = their sum).
  Run on the published mart, after complementary suppression; configured as a warning in
  _marts__models.yml so that a group the passes could not close is reported without stopping publication. Written with group by + join, independently of the window passes that
  produce the suppression.
-#}
{% test no_lone_suppressed_member(model, dimensions) %}
    {%- set dims = suppression_dimensions(dimensions, published=true) -%}
    {%- set width = dims | map(attribute='key') | map('length') | max -%}
    with cells as (
        {{ with_cohort_family(model) }}
    ),

    {%- for d in dims %}
        {%- set i = loop.index %}

        members_{{ i }} as (
            select
                {%- for k in d.key %}
                    {{ k }} as k_{{ loop.index }},
                {%- endfor %}
                sum(case when is_suppressed then 1 else 0 end) as n_hidden,
                sum(case when n_patients > 0 then 1 else 0 end) as n_shown_non_empty,
                count(*) as n_members,
                max(case when {{ d.total_shown or 'true' }} then 1 else 0 end) as outside_total_shown
            from cells
            where {{ d.member }}
            group by {% for k in d.key %}{{ k }}{{ ', ' if not loop.last }}{% endfor %}
        ),

        {%- if d.total %}

            totals_{{ i }} as (
                select
                    {%- for k in (d.total_key or d.key) %}
                        {{ k }} as k_{{ loop.index }},
                    {%- endfor %}
                    max(case when is_suppressed then 0 else 1 end) as total_shown,
                    max(case when is_suppressed then 1 else 0 end) as total_hidden
                from cells
                where {{ d.total }}
                group by {% for k in (d.total_key or d.key) %}{{ k }}{{ ', ' if not loop.last }}{% endfor %}
            ),
        {%- endif %}

        leaks_{{ i }} as (
            select
                {{ i }} as dimension,
                '{{ d.member | replace("'", "''") }}' as member_rule,
                {%- for j in range(1, width + 1) %}
                    {%- if j <= d.key | length %}
                        cast(m.k_{{ j }} as {{ dbt.type_string() }}) as key_{{ j }},
                    {%- else %}
                        cast(null as {{ dbt.type_string() }}) as key_{{ j }},
                    {%- endif %}
                {%- endfor %}
                m.n_members
            from members_{{ i }} as m
            {%- if d.total %}
                inner join totals_{{ i }} as t
                    on
                    {%- for k in d.key %}
                        {{ 'and ' if not loop.first }}m.k_{{ loop.index }} = t.k_{{ loop.index }}
                    {%- endfor %}
                where
                    (m.n_hidden = 1 and t.total_shown = 1)
                    -- a hidden total is the sum of its members when they are all shown
                    or (m.n_hidden = 0 and m.n_shown_non_empty > 0 and t.total_hidden = 1)
            {%- else %}
                where m.n_hidden = 1 and m.outside_total_shown = 1
            {%- endif %}
        ),
    {%- endfor %}

    leaks as (
        {%- for d in dims %}
            select * from leaks_{{ loop.index }}
            {%- if not loop.last %}
                union all
            {%- endif %}
        {%- endfor %}
    )

    select * from leaks
{% endtest %}

{#-
  The counts of the outcome cube (models/intermediate/int_outcome_cube*.sql) and how they nest. Every count
  here is a published cell of the suppressed cube: docs/SUPPRESSION.md explains the rules applied to them.
-#}

{#- Counts published at every grain (month / quarter / all time x every clinic and ALL x every cohort). -#}
{% macro cube_row_measures() -%}
    {{ return([
        'n_patients', 'n_patients_evaluable', 'n_courses', 'n_sessions',
        'n_evaluable_2pt', 'n_responder_2pt', 'n_evaluable_30', 'n_responder_30', 'n_responder_50',
        'n_adverse_events', 'n_serious_adverse_events', 'n_sessions_with_ae',
    ]) }}
{%- endmacro %}

{#- Counts published only for the whole registry over all time (mart_cohort_outcomes). -#}
{% macro cube_registry_measures() -%}
    {%- set out = [] -%}
    {%- for name in var('followup_windows') %}{% do out.append('n_followup_' ~ name) %}{% endfor -%}
    {%- do out.extend([
        'n_evaluable_sustained', 'n_sustained', 'n_mmd', 'n_evaluable_mmd_50', 'n_mmd_responder_50',
        'n_retreated',
    ]) -%}
    {{ return(out) }}
{%- endmacro %}

{#- Counts per adverse event type (whole registry, all time: mart_cohort_adverse_events). -#}
{% macro cube_event_type_measures() -%}
    {{ return(['n_events', 'n_serious_events', 'n_patients_with_event']) }}
{%- endmacro %}

{#-
  Distinct-patient counts: a patient belongs to one clinic, so they add up over clinics exactly, but over
  months or the cohorts of a family only as an upper bound (a patient can be seen in two months). The
  relations still protect them as if they added up (an attacker would try that first); the "hidden part
  is 1-10" test is applied only where a relation adds up exactly.
-#}
{% macro cube_patient_measures() -%}
    {{ return(['n_patients', 'n_patients_evaluable', 'n_patients_with_event']) }}
{%- endmacro %}

{#-
  Row rules (SPEC §3 rule 1): a row whose n_patients is 1..small_cell_max shows no figure; likewise the
  evaluable-course figures (the benchmark's responder rows) when n_patients_evaluable is small, and an
  event type's figures when n_patients_with_event is small.
-#}
{% macro cube_sub_row_rules() -%}
    {{ return({
        'n_patients_evaluable': ['n_patients_evaluable', 'n_evaluable_30', 'n_responder_30', 'n_responder_50'],
        'n_patients_with_event': ['n_patients_with_event', 'n_events', 'n_serious_events'],
    }) }}
{%- endmacro %}

{#-
  Counts nested within one row: (superset, subset) where the subset counts some of the superset's units.
  The difference is itself a count (a "virtual" cell, never published but protected: it must not be 1-10
  or derivable). Only direct links are listed; nested_measure_pairs() adds every implied pair.
  n_evaluable_50 is published as n_evaluable_30 (the same courses are evaluable for both thresholds).
-#}
{% macro cube_direct_nesting() -%}
    {%- set links = [
        ('n_courses', 'n_evaluable_2pt'),
        ('n_evaluable_2pt', 'n_evaluable_30'),
        ('n_evaluable_2pt', 'n_responder_2pt'),
        ('n_evaluable_30', 'n_responder_30'),
        ('n_responder_30', 'n_responder_50'),
        ('n_sessions', 'n_sessions_with_ae'),
        ('n_adverse_events', 'n_serious_adverse_events'),
        ('n_patients', 'n_patients_evaluable'),
        ('n_followup_4w', 'n_evaluable_sustained'),
        ('n_evaluable_sustained', 'n_sustained'),
        ('n_courses', 'n_mmd'),
        ('n_mmd', 'n_evaluable_mmd_50'),
        ('n_evaluable_mmd_50', 'n_mmd_responder_50'),
        ('n_courses', 'n_retreated'),
        ('n_events', 'n_serious_events'),
    ] -%}
    {%- for name in var('followup_windows') %}{% do links.append(('n_courses', 'n_followup_' ~ name)) %}{% endfor -%}
    {{ return(links) }}
{%- endmacro %}

{#- Every (superset, subset) pair implied by cube_direct_nesting (its transitive closure), sorted. -#}
{% macro nested_measure_pairs() -%}
    {%- set links = cube_direct_nesting() -%}
    {%- set pairs = [] -%}
    {%- for sup, sub in links %}{% do pairs.append((sup, sub)) %}{% endfor -%}
    {#- repeat: add (a, c) for (a, b), (b, c); a chain is at most as long as the list -#}
    {%- for _ in links -%}
        {%- for a, b in pairs -%}
            {%- for b2, c in links -%}
                {%- if b2 == b and (a, c) not in pairs -%}{% do pairs.append((a, c)) %}{%- endif -%}
            {%- endfor -%}
        {%- endfor -%}
    {%- endfor -%}
    {{ return(pairs | sort) }}
{%- endmacro %}

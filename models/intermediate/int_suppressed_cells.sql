{{ config(
    materialized='suppressed_cells',
    groups_model='int_suppression_groups',
    extra_hides=var('suppression_extra_hides', none),
) }}
-- depends_on: {{ ref('int_suppression_groups') }}
-- Every cell of the cube with its final state: is_hidden (the small-cell rule, hidden_pass 0, or a
-- complement, hidden_pass n) after complementary suppression has reached a fixed point (materialization
-- suppressed_cells, macros/suppression/). Virtual cells are never published (is_hidden is false for them).
-- extra_hides: the algebraic closure's extra hides (outcome_registry/disclosure_control.py), hidden in pass 0
-- beside the small-cell rule (hidden_pass 0 with is_primary false); the pipeline sets the var on every build.
select * from {{ ref('int_suppression_cells') }}

{#-
  Engine switch of the staging models (issue 14, docs/SPARK.md). DuckDB keeps them incremental with
  delete+insert. dbt-spark has no delete+insert strategy, and local Spark's Parquet tables cannot delete
  rows, so on Spark they are tables rebuilt in full on every build (the raw export is read in full anyway;
  the patient-scoped models do the same through var patient_scoped_incremental = false).
-#}
{% macro portable_incremental() -%}
    {{- return('table' if target.type == 'spark' else 'incremental') -}}
{%- endmacro %}

{#-
  The views of the warehouse (the core marts over the patient-scoped tables, docs/INCREMENTAL.md) are views
  on DuckDB, so each row is stored once. On Spark they are tables: the build is handed back to DuckDB by
  reading each table's Parquet files (outcome_registry/engines/spark.py, hand_back), and a Spark view has
  none.
-#}
{% macro portable_view() -%}
    {{- return('table' if target.type == 'spark' else 'view') -}}
{%- endmacro %}

{#-
  expr x a decimal literal (a Jinja number such as grid_margin = 1.1), as DuckDB computes it: exactly (DECIMAL)
  when expr is a whole number, in DOUBLE otherwise. Spark gets decimal literals as doubles
  (outcome_registry/engines/spark_dialect.py), so 200 * 1.1 would be 220.00000000000003 there and a
  comparison with 220 would flip; the whole-number case is therefore multiplied as decimals.
-#}
{% macro times_decimal(expr, factor) -%}
    {{- return(adapter.dispatch('times_decimal')(expr, factor)) -}}
{%- endmacro %}

{% macro default__times_decimal(expr, factor) -%}
    {{ expr }} * {{ factor }}
{%- endmacro %}

{% macro spark__times_decimal(expr, factor) -%}
    (case
        when {{ expr }} = floor({{ expr }})
            then cast(cast({{ expr }} as decimal(38, 0)) * cast('{{ factor }}' as decimal(18, 9)) as double)
        else {{ expr }} * {{ factor }}
    end)
{%- endmacro %}

{#-
  Register the Parquet export of the registry store (outcome_registry/engines/spark.py, export_raw:
  <spark_raw_dir>/<schema>/<table>/) as an external table for every dbt source. Run by the Spark engine
  before a cluster build (dbt run-operation register_raw_sources); a local build registers the same tables
  through its own Spark session. Dropped and created on every build, so a re-export with another schema is
  picked up (the metastore keeps the schema it inferred). A no-op on DuckDB and without var spark_raw_dir.
-#}
{% macro register_raw_sources() -%}
    {%- if execute and target.type == 'spark' and var('spark_raw_dir', none) -%}
        {%- set raw_dir = var('spark_raw_dir').rstrip('/') -%}
        {%- set schemas = [] -%}
        {%- for source in graph.sources.values() if source.package_name == project_name -%}
            {%- if source.schema not in schemas -%}
                {%- do run_query('create schema if not exists ' ~ source.schema) -%}
                {%- do schemas.append(source.schema) -%}
            {%- endif -%}
            {%- set location = (raw_dir ~ '/' ~ source.schema ~ '/' ~ source.identifier).replace("\\", "\\\\").replace("'", "\\'") -%}
            {%- do run_query('drop table if exists ' ~ source.schema ~ '.' ~ source.identifier) -%}
            {%- do run_query(
                'create table ' ~ source.schema ~ '.' ~ source.identifier
                ~ " using parquet location '" ~ location ~ "'"
            ) -%}
        {%- endfor -%}
    {%- endif -%}
{%- endmacro %}

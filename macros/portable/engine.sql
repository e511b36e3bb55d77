{#-
  Engine switches (issue 14, docs/SPARK.md). DuckDB keeps the incremental models with delete+insert.
  Spark has no delete+insert: with Delta / Iceberg tables (a cluster: var spark_file_format) the same
  models merge on their unique key; with plain Parquet tables (local Spark) they are rebuilt as tables,
  which is a correct full refresh, since the raw export is read in full anyway.
-#}
{% macro portable_incremental() -%}
    {{- return('table' if target.type == 'spark' and var('spark_file_format', 'parquet') == 'parquet' else 'incremental') -}}
{%- endmacro %}

{% macro portable_incremental_strategy() -%}
    {{- return('merge' if target.type == 'spark' else 'delete+insert') -}}
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

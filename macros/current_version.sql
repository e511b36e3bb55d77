{#-
  Current version of each natural key in a raw table (CONTRACT.md §2.4): the row of the latest batch by
  manifest _extracted_at, then by registry load order _load_seq (then source line, for determinism).

  Staging models are incremental on _load_seq. On an incremental run only the keys that can have changed
  are re-picked, from ALL raw rows of those keys, so the result equals a full rebuild:
    * keys carried by a load newer than the newest load already in the table, and
    * keys missing from the table - after the pre-hook `delete_vanished_versions` removed rows whose
      (batch, load) no longer exists in raw (a batch resubmitted with new content is deleted and
      reloaded under a new _load_seq).
-#}
{% macro current_version_rows(source_relation, key) -%}
    {%- if is_incremental() %}
        with changed_keys as (
            select src.{{ key }}
            from {{ source_relation }} as src
            where src._load_seq > (select coalesce(max(cur._load_seq), -1) from {{ this }} as cur)
            union
            select src.{{ key }}
            from {{ source_relation }} as src
            where not exists (select 1 from {{ this }} as cur where cur.{{ key }} = src.{{ key }})
        ),

        candidate_rows as (
            select src.*
            from {{ source_relation }} as src
            where src.{{ key }} in (select ck.{{ key }} from changed_keys as ck)
        )
    {%- else %}
        with candidate_rows as (
            select * from {{ source_relation }}
        )
    {%- endif %}

    select ranked.*
    from (
        select
            candidate_rows.*,
            row_number() over (
                partition by candidate_rows.{{ key }}
                order by candidate_rows._extracted_at desc, candidate_rows._load_seq desc,
                    candidate_rows._source_line desc
            ) as _version_rank
        from candidate_rows
    ) as ranked
    where ranked._version_rank = 1
{%- endmacro %}

{#- Pre-hook: drop rows whose batch load has been deleted from raw (batch replaced or removed). -#}
{% macro delete_vanished_versions(source_relation) -%}
    {%- if is_incremental() -%}
        delete from {{ this }}
        where not exists (
            select 1
            from (select distinct _batch_id, _load_seq from {{ source_relation }}) as loads
            where loads._batch_id = {{ this }}._batch_id and loads._load_seq = {{ this }}._load_seq
        )
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}

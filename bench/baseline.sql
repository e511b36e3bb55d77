-- Hand-written DuckDB baseline for the benchmark and an independent correctness check.
--
-- Reads the clinics' batch folders directly (no ingest, no dbt) and computes fct_courses and
-- mart_monthly_outcomes (cohort 'all') with the definitions of CONTRACT.md §3–§4, written from the
-- contract text, not from the dbt models, so that agreement between the two means something.
--
-- Inputs (DuckDB variables, set before running the script):
--   batch_glob       glob matching the batch folders (each holds manifest.json + CSV files), e.g. 'data/*'
--   diary_glob       glob for headache_diary.csv, normally batch_glob || '/headache_diary.csv' (an optional
--                    file in the contract: the harness points it at a header-only file when no batch has
--                    one, because a glob that matches nothing is an error in DuckDB)
--   course_gap_days  (optional) default 28
-- e.g. duckdb out.duckdb -c "SET VARIABLE batch_glob='data/*'; SET VARIABLE diary_glob='data/*/headache_diary.csv'"
--                        -f bench/baseline.sql
--
-- Assumes valid rows (the benchmark generates data with faults=0): there is no quarantine here.
-- Outputs: tables fct_courses and mart_monthly_outcomes in the current database. mart_monthly_outcomes holds
-- every figure BEFORE suppression with <figure>_must_hide (the small-cell rule hides it) and is_small_cell:
-- which complements the warehouse hides beside them is its engine's choice (docs/SUPPRESSION.md), so the
-- comparison is: a figure the warehouse shows equals the baseline's and is not one the rule must hide.

-- 1. Batches: one row per batch folder; later extracted_at wins, then the later folder name
--    (the order in which ingest loads a folder of batches).
CREATE OR REPLACE TEMP TABLE b_batches AS
SELECT
    parse_dirpath(filename) AS batch_dir,
    batch_id,
    CAST(extracted_at AS TIMESTAMP) AS extracted_at,
    row_number() OVER (ORDER BY CAST(extracted_at AS TIMESTAMP), parse_dirpath(filename)) AS batch_rank
FROM read_json(
    getvariable('batch_glob') || '/manifest.json',
    filename = true,
    columns = {batch_id: 'VARCHAR', clinic_id: 'VARCHAR', extracted_at: 'VARCHAR'}
);

-- 2. Current version of every record: the row from the latest batch that carries its natural key.
CREATE OR REPLACE TEMP TABLE b_patients AS
SELECT r.* EXCLUDE (filename)
FROM read_csv(
    getvariable('batch_glob') || '/patients.csv', header = true, filename = true,
    columns = {
        patient_id: 'VARCHAR', clinic_id: 'VARCHAR', birth_year: 'INTEGER', sex: 'VARCHAR',
        diagnosis_code: 'VARCHAR', baseline_headache_days: 'INTEGER', baseline_migraine_days: 'INTEGER',
        prior_preventive_failures: 'INTEGER', enrolled_on: 'DATE'
    }
) AS r
JOIN b_batches AS b ON parse_dirpath(r.filename) = b.batch_dir
QUALIFY row_number() OVER (PARTITION BY r.patient_id ORDER BY b.batch_rank DESC) = 1;

CREATE OR REPLACE TEMP TABLE b_sessions AS
SELECT r.* EXCLUDE (filename)
FROM read_csv(
    getvariable('batch_glob') || '/infusion_sessions.csv', header = true, filename = true,
    columns = {
        session_id: 'VARCHAR', patient_id: 'VARCHAR', session_date: 'DATE', route: 'VARCHAR',
        setting: 'VARCHAR', dose_mg: 'DOUBLE', weight_kg: 'DOUBLE', duration_min: 'INTEGER',
        completed: 'BOOLEAN', stop_reason: 'VARCHAR'
    }
) AS r
JOIN b_batches AS b ON parse_dirpath(r.filename) = b.batch_dir
QUALIFY row_number() OVER (PARTITION BY r.session_id ORDER BY b.batch_rank DESC) = 1;

CREATE OR REPLACE TEMP TABLE b_pain AS
SELECT r.* EXCLUDE (filename)
FROM read_csv(
    getvariable('batch_glob') || '/pain_scores.csv', header = true, filename = true,
    columns = {
        score_id: 'VARCHAR', patient_id: 'VARCHAR', session_id: 'VARCHAR', assessed_at: 'TIMESTAMP',
        timepoint: 'VARCHAR', pain_nrs: 'DOUBLE'
    }
) AS r
JOIN b_batches AS b ON parse_dirpath(r.filename) = b.batch_dir
QUALIFY row_number() OVER (PARTITION BY r.score_id ORDER BY b.batch_rank DESC) = 1;

CREATE OR REPLACE TEMP TABLE b_adverse_events AS
SELECT r.* EXCLUDE (filename)
FROM read_csv(
    getvariable('batch_glob') || '/adverse_events.csv', header = true, filename = true,
    columns = {
        event_id: 'VARCHAR', session_id: 'VARCHAR', event_type: 'VARCHAR', severity: 'VARCHAR',
        serious: 'BOOLEAN', action: 'VARCHAR'
    }
) AS r
JOIN b_batches AS b ON parse_dirpath(r.filename) = b.batch_dir
QUALIFY row_number() OVER (PARTITION BY r.event_id ORDER BY b.batch_rank DESC) = 1;

CREATE OR REPLACE TEMP TABLE b_diary AS
SELECT r.* EXCLUDE (filename)
FROM read_csv(
    getvariable('diary_glob'), header = true, filename = true,
    columns = {
        diary_id: 'VARCHAR', patient_id: 'VARCHAR', period_end: 'DATE', headache_days: 'INTEGER',
        migraine_days: 'INTEGER', midas_score: 'INTEGER', hit6_score: 'INTEGER'
    }
) AS r
JOIN b_batches AS b ON parse_dirpath(r.filename) = b.batch_dir
QUALIFY row_number() OVER (PARTITION BY r.diary_id ORDER BY b.batch_rank DESC) = 1;

-- 3. Session pain: the latest pre_infusion and the latest post_infusion score of each session.
CREATE OR REPLACE TEMP TABLE b_session_pain AS
WITH latest AS (
    SELECT session_id, timepoint, pain_nrs
    FROM b_pain
    WHERE timepoint IN ('pre_infusion', 'post_infusion')
    QUALIFY row_number() OVER (
        PARTITION BY session_id, timepoint ORDER BY assessed_at DESC, score_id DESC
    ) = 1
)
SELECT
    s.session_id,
    s.patient_id,
    s.session_date,
    max(l.pain_nrs) FILTER (WHERE l.timepoint = 'pre_infusion') AS pre_pain,
    max(l.pain_nrs) FILTER (WHERE l.timepoint = 'post_infusion') AS post_pain
FROM b_sessions AS s
LEFT JOIN latest AS l ON l.session_id = s.session_id
GROUP BY ALL;

-- 4. Courses: a new course starts when a session comes more than course_gap_days after the previous one.
CREATE OR REPLACE TEMP TABLE b_course_sessions AS
WITH ordered AS (
    SELECT
        *,
        session_date - lag(session_date) OVER (
            PARTITION BY patient_id ORDER BY session_date, session_id
        ) AS gap_days
    FROM b_session_pain
),
numbered AS (
    SELECT
        *,
        sum(CASE WHEN gap_days IS NULL OR gap_days > coalesce(getvariable('course_gap_days'), 28)
            THEN 1 ELSE 0 END) OVER (
            PARTITION BY patient_id ORDER BY session_date, session_id ROWS UNBOUNDED PRECEDING
        ) AS course_number
    FROM ordered
)
SELECT
    *,
    row_number() OVER (PARTITION BY patient_id, course_number ORDER BY session_date, session_id)
        AS session_number,
    count(*) OVER (PARTITION BY patient_id, course_number) AS n_sessions
FROM numbered;

CREATE OR REPLACE TEMP TABLE b_courses AS
SELECT
    cs.patient_id,
    cs.course_number,
    p.clinic_id,
    p.baseline_migraine_days,
    min(cs.session_date) AS first_session_date,
    max(cs.session_date) AS last_session_date,
    count(*) AS n_sessions,
    -- baseline = pre of the first session, end = post of the last (null stays null)
    max(cs.pre_pain) FILTER (WHERE cs.session_number = 1) AS baseline_pain,
    max(cs.post_pain) FILTER (WHERE cs.session_number = cs.n_sessions) AS end_pain
FROM b_course_sessions AS cs
LEFT JOIN b_patients AS p ON p.patient_id = cs.patient_id
GROUP BY ALL;

-- 5. Follow-up pain: in each window after the last session date, the score nearest the target day,
--    the earliest one on a tie.
CREATE OR REPLACE TEMP TABLE b_followups AS
WITH windows (window_name, day_from, day_to, target_day) AS (
    VALUES ('1w', 4, 10, 7), ('4w', 21, 35, 28), ('12w', 70, 98, 84)
),
candidates AS (
    SELECT
        c.patient_id,
        c.course_number,
        w.window_name,
        f.pain_nrs,
        CAST(f.assessed_at AS DATE) - c.last_session_date AS day_after,
        w.target_day,
        f.assessed_at,
        f.score_id
    FROM b_courses AS c
    JOIN b_pain AS f
        ON f.patient_id = c.patient_id
        AND f.timepoint = 'followup'
        AND CAST(f.assessed_at AS DATE) - c.last_session_date BETWEEN 4 AND 98
    JOIN windows AS w ON CAST(f.assessed_at AS DATE) - c.last_session_date BETWEEN w.day_from AND w.day_to
)
SELECT
    patient_id,
    course_number,
    max(pain_nrs) FILTER (WHERE window_name = '1w') AS followup_1w_pain,
    max(pain_nrs) FILTER (WHERE window_name = '4w') AS followup_4w_pain,
    max(pain_nrs) FILTER (WHERE window_name = '12w') AS followup_12w_pain
FROM (
    SELECT *
    FROM candidates
    QUALIFY row_number() OVER (
        PARTITION BY patient_id, course_number, window_name
        ORDER BY abs(day_after - target_day), assessed_at, score_id
    ) = 1
)
GROUP BY ALL;

-- 6. Migraine days: the earliest diary with period_end 28–84 days after the course's last session.
CREATE OR REPLACE TEMP TABLE b_mmd AS
SELECT c.patient_id, c.course_number, d.migraine_days AS mmd_followup
FROM b_courses AS c
JOIN b_diary AS d
    ON d.patient_id = c.patient_id
    AND d.period_end - c.last_session_date BETWEEN 28 AND 84
QUALIFY row_number() OVER (
    PARTITION BY c.patient_id, c.course_number ORDER BY d.period_end, d.diary_id
) = 1;

-- 7. fct_courses
CREATE OR REPLACE TABLE fct_courses AS
WITH cutoff AS (SELECT max(session_date) AS data_cutoff FROM b_sessions),
derived AS (
    SELECT
        c.*,
        CASE WHEN c.baseline_pain > 0 AND c.end_pain IS NOT NULL
            THEN (c.baseline_pain - c.end_pain) / c.baseline_pain END AS course_relief_pct,
        CAST(c.baseline_pain AS DECIMAL(18, 6)) AS baseline_dec,
        CAST(c.end_pain AS DECIMAL(18, 6)) AS end_dec,
        lead(c.first_session_date) OVER (
            PARTITION BY c.patient_id ORDER BY c.course_number
        ) AS next_course_first_date
    FROM b_courses AS c
)
SELECT
    d.patient_id || '#' || d.course_number AS course_id,
    d.patient_id,
    d.course_number,
    d.clinic_id,
    d.first_session_date,
    d.last_session_date,
    CAST(date_trunc('month', d.last_session_date) AS DATE) AS completion_month,
    d.n_sessions,
    d.baseline_pain,
    d.end_pain,
    d.baseline_pain - d.end_pain AS pain_change,
    d.course_relief_pct,
    -- Thresholds in exact decimals, cross-multiplied: in binary floating point (9 − 6.3) / 9 is not 0.30,
    -- and a score exactly on the threshold must count (the contract says ≥).
    CASE WHEN d.course_relief_pct IS NOT NULL THEN 10 * (d.baseline_dec - d.end_dec) >= 3 * d.baseline_dec END
        AS responder_30,
    CASE WHEN d.course_relief_pct IS NOT NULL THEN 2 * (d.baseline_dec - d.end_dec) >= d.baseline_dec END
        AS responder_50,
    d.baseline_dec - d.end_dec >= 2 AS responder_2pt,
    f.followup_1w_pain,
    f.followup_4w_pain,
    f.followup_12w_pain,
    10 * CAST(f.followup_4w_pain AS DECIMAL(18, 6)) <= 7 * d.baseline_dec AS sustained_30_at_4w,
    d.next_course_first_date,
    -- censored at the data cutoff (latest session_date loaded) when there is no next course
    coalesce(d.next_course_first_date, cutoff.data_cutoff) - d.last_session_date AS days_to_retreatment,
    d.next_course_first_date IS NOT NULL AS retreated,
    d.baseline_migraine_days AS mmd_baseline,
    m.mmd_followup,
    m.mmd_followup - d.baseline_migraine_days AS mmd_change,
    CASE WHEN d.baseline_migraine_days > 0 AND m.mmd_followup IS NOT NULL
        -- reduction >= 50 % of baseline, in integers: 2 * (baseline - followup) >= baseline
        THEN 2 * (d.baseline_migraine_days - m.mmd_followup) >= d.baseline_migraine_days END
        AS mmd_responder_50
FROM derived AS d
CROSS JOIN cutoff
LEFT JOIN b_followups AS f USING (patient_id, course_number)
LEFT JOIN b_mmd AS m USING (patient_id, course_number);

-- 8. mart_monthly_outcomes, cohort 'all': sessions count in the month of session_date, course outcomes
--    in the course's completion month; each clinic and the whole registry ('ALL').
CREATE OR REPLACE TEMP TABLE b_monthly_raw AS
WITH ae_per_session AS (
    SELECT session_id, count(*) AS n_ae, count(*) FILTER (WHERE serious) AS n_serious
    FROM b_adverse_events
    GROUP BY session_id
),
session_rows AS (
    SELECT
        CAST(date_trunc('month', s.session_date) AS DATE) AS month,
        p.clinic_id,
        s.patient_id,
        coalesce(a.n_ae, 0) AS n_ae,
        coalesce(a.n_serious, 0) AS n_serious
    FROM b_sessions AS s
    LEFT JOIN b_patients AS p ON p.patient_id = s.patient_id
    LEFT JOIN ae_per_session AS a ON a.session_id = s.session_id
),
session_cells AS (
    SELECT
        month,
        CASE WHEN grouping(clinic_id) = 1 THEN 'ALL' ELSE clinic_id END AS clinic_id,
        count(DISTINCT patient_id) AS n_patients,
        count(*) AS n_sessions,
        CAST(sum(n_ae) AS BIGINT) AS n_adverse_events,
        count(*) FILTER (WHERE n_ae > 0) AS n_sessions_with_ae,
        CAST(sum(n_serious) AS BIGINT) AS n_serious_adverse_events
    FROM session_rows
    GROUP BY GROUPING SETS ((month, clinic_id), (month))
),
course_cells AS (
    SELECT
        completion_month AS month,
        CASE WHEN grouping(clinic_id) = 1 THEN 'ALL' ELSE clinic_id END AS clinic_id,
        count(*) AS n_courses,
        count(responder_30) AS n_evaluable_30,
        count(*) FILTER (WHERE responder_30) AS n_responder_30,
        count(responder_50) AS n_evaluable_50,
        count(*) FILTER (WHERE responder_50) AS n_responder_50,
        count(responder_2pt) AS n_evaluable_2pt,
        count(*) FILTER (WHERE responder_2pt) AS n_responder_2pt,
        avg(CAST(responder_2pt AS DOUBLE)) AS responder_2pt_rate,
        avg(course_relief_pct) AS mean_relief_pct
    FROM fct_courses
    GROUP BY GROUPING SETS ((completion_month, clinic_id), (completion_month))
)
-- a course's last session lies in its completion month, so every course cell has a session cell
SELECT s.*, c.* EXCLUDE (month, clinic_id)
FROM session_cells AS s
LEFT JOIN course_cells AS c USING (month, clinic_id);

CREATE OR REPLACE TABLE mart_monthly_outcomes AS
WITH z AS (SELECT 1.959963984540054 AS z),   -- two-sided 95 %
rates AS (
    SELECT
        r.*,
        r.n_responder_30 / nullif(r.n_evaluable_30, 0) AS responder_30_rate,
        r.n_responder_50 / nullif(r.n_evaluable_50, 0) AS responder_50_rate,
        z.z
    FROM b_monthly_raw AS r CROSS JOIN z
),
wilson AS (
    -- Wilson score interval: (p + z²/2n ± z·sqrt(p(1−p)/n + z²/4n²)) / (1 + z²/n)
    SELECT
        *,
        (responder_30_rate + z * z / (2 * n_evaluable_30)
            - z * sqrt(responder_30_rate * (1 - responder_30_rate) / n_evaluable_30
                + z * z / (4 * n_evaluable_30 * n_evaluable_30)))
            / (1 + z * z / n_evaluable_30) AS responder_30_ci_low,
        (responder_30_rate + z * z / (2 * n_evaluable_30)
            + z * sqrt(responder_30_rate * (1 - responder_30_rate) / n_evaluable_30
                + z * z / (4 * n_evaluable_30 * n_evaluable_30)))
            / (1 + z * z / n_evaluable_30) AS responder_30_ci_high,
        (responder_50_rate + z * z / (2 * n_evaluable_50)
            - z * sqrt(responder_50_rate * (1 - responder_50_rate) / n_evaluable_50
                + z * z / (4 * n_evaluable_50 * n_evaluable_50)))
            / (1 + z * z / n_evaluable_50) AS responder_50_ci_low,
        (responder_50_rate + z * z / (2 * n_evaluable_50)
            + z * sqrt(responder_50_rate * (1 - responder_50_rate) / n_evaluable_50
                + z * z / (4 * n_evaluable_50 * n_evaluable_50)))
            / (1 + z * z / n_evaluable_50) AS responder_50_ci_high
    FROM rates
),
small AS (
    -- CONTRACT.md §4, the small-cell rule alone (SPEC §3 rules 1-2): a count of 1-10 is hidden; a row of 1-10
    -- patients hides every figure; a rate or mean is hidden with a hidden (1-10) numerator or denominator or
    -- a complement (denominator - numerator) of 1-10. Complementary suppression hides more, where the
    -- warehouse's engine chooses; the comparison checks shown figures and these hidden ones.
    SELECT
        *,
        n_patients BETWEEN 1 AND 10 AS is_small_cell,
        coalesce(n_courses, 0) BETWEEN 1 AND 10 AS courses_small,
        n_sessions BETWEEN 1 AND 10 AS sessions_small,
        coalesce(n_evaluable_30, 0) BETWEEN 1 AND 10 OR coalesce(n_responder_30, 0) BETWEEN 1 AND 10
            OR coalesce(n_evaluable_30 - n_responder_30, 0) BETWEEN 1 AND 10 AS r30_small,
        coalesce(n_evaluable_50, 0) BETWEEN 1 AND 10 OR coalesce(n_responder_50, 0) BETWEEN 1 AND 10
            OR coalesce(n_evaluable_50 - n_responder_50, 0) BETWEEN 1 AND 10 AS r50_small,
        coalesce(n_evaluable_2pt, 0) BETWEEN 1 AND 10 OR coalesce(n_responder_2pt, 0) BETWEEN 1 AND 10
            OR coalesce(n_evaluable_2pt - n_responder_2pt, 0) BETWEEN 1 AND 10 AS r2pt_small,
        coalesce(n_evaluable_30, 0) BETWEEN 1 AND 10 AS relief_small,
        n_adverse_events BETWEEN 1 AND 10 OR n_sessions BETWEEN 1 AND 10
            OR n_sessions - n_adverse_events BETWEEN 1 AND 10 AS ae_small
    FROM wilson
)
SELECT
    month,
    clinic_id,
    'all' AS cohort_id,
    -- every figure before suppression, and <figure>_must_hide when the small-cell rule hides it
    n_patients,
    is_small_cell AS n_patients_must_hide,
    coalesce(n_courses, 0) AS n_courses,
    is_small_cell OR courses_small AS n_courses_must_hide,
    n_sessions,
    is_small_cell OR sessions_small AS n_sessions_must_hide,
    responder_30_rate,
    is_small_cell OR r30_small AS responder_30_rate_must_hide,
    responder_30_ci_low,
    is_small_cell OR r30_small AS responder_30_ci_low_must_hide,
    responder_30_ci_high,
    is_small_cell OR r30_small AS responder_30_ci_high_must_hide,
    responder_50_rate,
    is_small_cell OR r50_small AS responder_50_rate_must_hide,
    responder_50_ci_low,
    is_small_cell OR r50_small AS responder_50_ci_low_must_hide,
    responder_50_ci_high,
    is_small_cell OR r50_small AS responder_50_ci_high_must_hide,
    responder_2pt_rate,
    is_small_cell OR r2pt_small AS responder_2pt_rate_must_hide,
    mean_relief_pct,
    is_small_cell OR relief_small AS mean_relief_pct_must_hide,
    100.0 * n_adverse_events / n_sessions AS ae_per_100_sessions,
    is_small_cell OR ae_small AS ae_per_100_sessions_must_hide,
    -- the row rule alone: is_suppressed of a row of 1-10 patients (the warehouse also hides complements)
    is_small_cell,
    is_small_cell AS is_suppressed
FROM small
ORDER BY month, clinic_id = 'ALL', clinic_id;

-- Per clinic, responder metric and direction: whether its risk-adjusted CUSUM (mart_clinic_cusum) has
-- signalled, whether it is above its threshold now, and when it last signalled, for the aggregate tier.
-- No count is published. The status is shown only when the clinic's all-time benchmark row (cohort 'all',
-- this metric) shows its rate: a signal says something about the outcomes behind that row, so it must not
-- describe a hidden one. The last signal's period is the month when that month's benchmark row shows its
-- rate, else the quarter when the quarter's does, else none (a signal implies at least one failure, or
-- one response, among that period's courses, which must not be said of a hidden cell).
-- Published (aggregate tier).
with cusum as (
    select * from {{ ref('mart_clinic_cusum') }}
),

benchmark as (
    select
        period_type,
        period_start,
        period_label,
        clinic_id,
        clinic_code,
        metric,
        rate is not null and not is_suppressed as rate_shown,
        case
            when suppression_reason is not null then suppression_reason
            when rate is null then 'partial'
        end as hidden_reason
    from {{ ref('mart_clinic_benchmark') }}
    where cohort_id = 'all' and clinic_id <> 'ALL' and metric in ('responder_30', 'responder_50')
),

directions as (
    select
        clinic_id,
        metric,
        'deterioration' as direction,
        course_seq,
        completion_month,
        cusum_deterioration as statistic,
        threshold_deterioration as threshold,
        signal_deterioration as is_signal
    from cusum
    union all
    select
        clinic_id,
        metric,
        'improvement',
        course_seq,
        completion_month,
        cusum_improvement,
        threshold_improvement,
        signal_improvement
    from cusum
),

latest as (
    select
        clinic_id,
        metric,
        direction,
        max(course_seq) as last_seq
    from directions
    group by clinic_id, metric, direction
),

summary as (
    select
        directions.clinic_id,
        directions.metric,
        directions.direction,
        max(directions.threshold) as threshold,
        max(case when directions.is_signal then 1 else 0 end) = 1 as signalled,
        max(
            case
                when directions.course_seq = latest.last_seq and directions.statistic >= directions.threshold
                    then 1
                else 0
            end
        ) = 1 as above_threshold_now,
        max(case when directions.is_signal then directions.completion_month end) as last_signal_month
    from directions
    inner join latest
        on directions.clinic_id = latest.clinic_id
            and directions.metric = latest.metric
            and directions.direction = latest.direction
    group by directions.clinic_id, directions.metric, directions.direction
),

visible as (
    select
        summary.*,
        all_time.clinic_code,
        coalesce(all_time.rate_shown, false) as status_shown,
        coalesce(all_time.hidden_reason, 'complementary') as hidden_reason,
        month_row.rate_shown as month_shown,
        month_row.period_label as month_label,
        quarter_row.rate_shown as quarter_shown,
        quarter_row.period_start as quarter_start,
        quarter_row.period_label as quarter_label
    from summary
    left join benchmark as all_time
        on summary.clinic_id = all_time.clinic_id
            and summary.metric = all_time.metric
            and all_time.period_type = 'all_time'
    left join benchmark as month_row
        on summary.clinic_id = month_row.clinic_id
            and summary.metric = month_row.metric
            and month_row.period_type = 'month'
            and summary.last_signal_month = month_row.period_start
    left join benchmark as quarter_row
        on summary.clinic_id = quarter_row.clinic_id
            and summary.metric = quarter_row.metric
            and quarter_row.period_type = 'quarter'
            and {{ quarter_start('summary.last_signal_month') }} = quarter_row.period_start
)

select
    clinic_id,
    clinic_code,
    metric,
    direction,
    status_shown,
    case when not status_shown then 'benchmark_hidden' end as not_shown_reason,
    case when status_shown then signalled end as signalled,
    case when status_shown then above_threshold_now end as above_threshold_now,
    case
        when not status_shown or last_signal_month is null then null
        when month_shown then 'month'
        when quarter_shown then 'quarter'
        else 'not_shown'
    end as last_signal_period_type,
    case
        when not status_shown then null
        when month_shown then last_signal_month
        when quarter_shown then quarter_start
    end as last_signal_period_start,
    case
        when not status_shown then null
        when month_shown then month_label
        when quarter_shown then quarter_label
    end as last_signal_period_label,
    threshold,
    not status_shown as is_suppressed,
    case when not status_shown then hidden_reason end as suppression_reason
from visible

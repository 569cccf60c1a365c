-- Monthly acquisition cohorts: customers by the month of their first purchase and their
-- acquisition channel, and how many of them bought in each month since.
with purchases as (
    select
        customer_id,
        purchase_number,
        amount,
        cast({{ dbt.date_trunc('month', 'order_date') }} as date) as order_month
    from {{ ref('int_purchases_sequenced') }}
),

cohorts as (
    select
        purchases.customer_id,
        purchases.order_month as cohort_month,
        coalesce(profiles.acquisition_channel, 'unknown') as acquisition_channel
    from purchases
    inner join {{ ref('int_customer_profiles') }} as profiles on purchases.customer_id = profiles.customer_id
    where purchases.purchase_number = 1
),

cohort_sizes as (
    select cohort_month, acquisition_channel, count(*) as cohort_customers
    from cohorts
    group by cohort_month, acquisition_channel
),

-- Every month with a purchase, so a cohort month in which nobody came back shows as 0.
months as (
    select distinct order_month from purchases
),

activity as (
    select
        cohorts.cohort_month,
        cohorts.acquisition_channel,
        purchases.order_month,
        count(distinct purchases.customer_id) as retained_customers,
        sum(purchases.amount) as revenue
    from purchases
    inner join cohorts on purchases.customer_id = cohorts.customer_id
    group by 1, 2, 3
)

select
    cohort_sizes.cohort_month,
    cast(cohort_sizes.acquisition_channel as {{ dbt.type_string() }}) as acquisition_channel,
    cast({{ dbt.datediff('cohort_sizes.cohort_month', 'months.order_month', 'month') }} as integer) as months_since_first_purchase,
    cast(cohort_sizes.cohort_customers as integer) as cohort_customers,
    cast(coalesce(activity.retained_customers, 0) as integer) as retained_customers,
    cast(coalesce(activity.retained_customers, 0) * 1.0 / cohort_sizes.cohort_customers as double) as retention_rate,
    cast(coalesce(activity.revenue, 0) as decimal(18, 2)) as revenue
from cohort_sizes
inner join months on months.order_month >= cohort_sizes.cohort_month
left join activity
    on cohort_sizes.cohort_month = activity.cohort_month
    and cohort_sizes.acquisition_channel = activity.acquisition_channel
    and months.order_month = activity.order_month

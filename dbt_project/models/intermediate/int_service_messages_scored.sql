-- The mood of each message a customer wrote to the service desk (DOMAIN §3: sentiment of service
-- contacts where text exists), from the terms of seed sentiment_lexicon: transparent, and tuned by
-- editing a word list rather than by retraining. Agents' replies are not the customer's mood.
{% set s = var('sentiment') %}

with messages as (
    select
        message_id,
        ticket_id,
        sent_at,
        -- Punctuation and spacing as single spaces, padded, so an English term is found as a
        -- whole word (' late ' is not in ' latest ').
        ' ' || trim({{ cdp.regexp_replace_all('lower(body)', '[[:punct:][:space:]，。！？、；：“”‘’（）]+', ' ') }}) || ' ' as words
    from {{ ref('stg_helpdesk__messages') }}
    where author = 'customer' and body is not null
),

lexicon as (
    select
        term,
        weight,
        -- English terms match whole words; Chinese text has no spaces between words.
        case when {{ cdp.regexp_like('term', '[ -~]') }} then ' ' || term || ' ' else term end as needle
    from {{ ref('sentiment_lexicon') }}
),

matched as (
    select messages.message_id, lexicon.term, lexicon.weight
    from messages
    inner join lexicon on {{ dbt.position('lexicon.needle', 'messages.words') }} > 0
),

-- A term inside a longer matched term is that term's part, not a word of its own: "not happy"
-- is not also "happy", "不满意" not also "满意".
counted as (
    select matched.message_id, matched.weight
    from matched
    where not exists (
        select 1
        from matched as longer
        where longer.message_id = matched.message_id
          and longer.term <> matched.term
          and {{ dbt.position('matched.term', 'longer.term') }} > 0
    )
),

scored as (
    select message_id, sum(weight) as weight_sum, count(*) as terms_matched
    from counted
    group by message_id
)

select
    messages.message_id,
    messages.ticket_id,
    messages.sent_at,
    cast(greatest(-1, least(1, coalesce(scored.weight_sum, 0))) as decimal(4, 3)) as sentiment_score,
    case
        when coalesce(scored.weight_sum, 0) <= -{{ s['neutral_band'] }} then 'negative'
        when coalesce(scored.weight_sum, 0) >= {{ s['neutral_band'] }} then 'positive'
        else 'neutral'
    end as sentiment,
    cast(coalesce(scored.terms_matched, 0) as integer) as terms_matched
from messages
left join scored on messages.message_id = scored.message_id

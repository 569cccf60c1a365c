-- The mood of each message a customer wrote to the service desk (DOMAIN §3: sentiment of service
-- contacts where text exists), from the terms of seed sentiment_lexicon: transparent, and tuned by
-- editing a word list rather than by retraining. Agents' replies are not the customer's mood.
-- Incremental: a daily run scores the messages staging rewrote and deletes those it dropped (a
-- change to the lexicon or the vars rebuilds the table: the dbt asset's rules fingerprint).
{{ config(**absorbing_config(key='message_id')) }}
{% set s = var('sentiment') %}
{% set since = absorbed_until(key='message_id') %}

with restaged as (
    select message_id, ticket_id, sent_at, author, body
    from {{ ref('stg_helpdesk__messages') }}
    {%- if since %}
    where _restaged_at > {{ since }}
    {%- endif %}
),

messages as (
    select
        message_id,
        ticket_id,
        sent_at,
        -- Punctuation and spacing as two spaces between words, padded: an English term is found
        -- as a whole word (' late ' is not in ' latest '), and two found next to each other do
        -- not share the space between them.
        '  ' || replace(trim({{ cdp.regexp_replace_all('lower(body)', '[[:punct:][:space:]，。！？、；：“”‘’（）【】《》…—]+', ' ') }}), ' ', '  ') || '  ' as words
    from restaged
    where author = 'customer' and body is not null
),

lexicon as (
    select
        term,
        weight,
        -- English terms match whole words; Chinese text has no spaces between words.
        case when {{ cdp.regexp_like('term', '[ -~]') }} then ' ' || replace(term, ' ', '  ') || ' ' else term end as needle
    from {{ ref('sentiment_lexicon') }}
),

matched as (
    select
        messages.message_id,
        lexicon.term,
        lexicon.needle,
        lexicon.weight,
        ({{ dbt.length('messages.words') }} - {{ dbt.length(dbt.replace('messages.words', 'lexicon.needle', "''")) }})
            / {{ dbt.length('lexicon.needle') }} as occurrences
    from messages
    inner join lexicon on {{ dbt.position('lexicon.needle', 'messages.words') }} > 0
),

-- How often a term is found only as part of a longer term found in the same message: "happy"
-- inside "not happy", "满意" inside "不满意".
inside_longer as (
    select
        shorter.message_id,
        shorter.term,
        sum(longer.occurrences * (
            ({{ dbt.length('longer.needle') }} - {{ dbt.length(dbt.replace('longer.needle', 'shorter.needle', "''")) }})
            / {{ dbt.length('shorter.needle') }}
        )) as occurrences
    from matched as shorter
    inner join matched as longer
        on longer.message_id = shorter.message_id
        and longer.term <> shorter.term
        and {{ dbt.position('shorter.needle', 'longer.needle') }} > 0
    group by shorter.message_id, shorter.term
),

-- Each term counts once in a message where it is found on its own at least once.
counted as (
    select matched.message_id, matched.weight
    from matched
    left join inside_longer
        on inside_longer.message_id = matched.message_id and inside_longer.term = matched.term
    where matched.occurrences > coalesce(inside_longer.occurrences, 0)
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
    cast(coalesce(scored.terms_matched, 0) as integer) as terms_matched,
    {{ restage_stamp() }} as _restaged_at
from messages
left join scored on messages.message_id = scored.message_id
{%- if since %}
-- Tombstones (no _restaged_at) delete the rows of messages staging dropped, and of messages
-- rewritten as no longer the customer's own.
union all by name
select record_id as message_id from ({{ dropped_since('stg_helpdesk__messages', since) }}) as dropped
union all by name
select message_id from restaged where not (author = 'customer' and body is not null)
{%- endif %}

-- Lexicon terms the scoring can match as written: lower case, trimmed, English terms of letters
-- with single spaces or hyphens (matched as whole words between spaces), other terms without
-- ASCII characters (matched anywhere); weights in [-1, 1] and not 0.
select term, weight
from {{ ref('sentiment_lexicon') }}
where not (
        {{ cdp.regexp_like('term', '^[a-z]+([ -][a-z]+)*$') }}
        or not {{ cdp.regexp_like('term', '[ -~]') }}
    )
    or weight not between -1 and 1
    or weight = 0

-- Lexicon terms the scoring can match as written: lower case, trimmed, English terms of letters
-- with single spaces (matched as whole words; messages keep no punctuation), other terms without
-- ASCII characters or the punctuation messages lose (matched anywhere); weights in [-1, 1], not 0.
select term, weight
from {{ ref('sentiment_lexicon') }}
where not (
        {{ cdp.regexp_like('term', '^[a-z]+( [a-z]+)*$') }}
        or not {{ cdp.regexp_like('term', '[ -~，。！？、；：“”‘’（）【】《》…—[:space:]]') }}
    )
    or weight not between -1 and 1
    or weight = 0

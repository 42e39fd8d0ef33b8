-- The exclusive end of each reported week, going back from the as-of date.
select (date '{{ var("as_of_date") }}' - 7 * weeks_back) as week_end
from generate_series(0, {{ var("weeks") }} - 1) as weeks_back

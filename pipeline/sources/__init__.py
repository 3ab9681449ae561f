"""Sources: ``record`` (one typed ``sources.parquet`` row), ``entries`` (expanding the
``sources`` params: folders, lists, names), ``fetch`` and ``page`` (HTTP and page
downloads with retries), ``licences`` and ``download`` (the download stage's library:
every entry fetched, probed, scanned and recorded)."""

"""The domain: asset definitions, partitions, params, graph planning and code versions.

Pure Python: nothing here touches SQL, HTTP or the file system.
"""

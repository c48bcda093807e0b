"""The execution boundary: the isolated DuckDB worker process, the encrypted
storage of dataset versions it reads, and the mock data operators may see.
Nothing here touches the metadata store; the runtime calls in through
``worker.run_in_worker`` and gets back only the measurement's inputs."""

"""ExampleGen for image datasets: IDX files, a folder per identity, or raw TFRecords."""

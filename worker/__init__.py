"""Media I/O, face crop and paste-back, the job task and the RQ worker."""

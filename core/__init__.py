"""The torch-free, FastAPI-free core that service, worker and model may import.

Errors, job options, settings, storage, the job protocol, media probing, logging.
"""

"""The reference agent: an SDK (Client, Agent, JobContext) and a CLI (`python -m agent`).

Standard library only. See docs/JOBS.md for the protocol it follows.
"""
from agent.client import ApiError, Backoff, Client, Stopped
from agent.worker import Agent, JobContext, JobStopped

__all__ = ["Agent", "ApiError", "Backoff", "Client", "JobContext", "JobStopped", "Stopped"]

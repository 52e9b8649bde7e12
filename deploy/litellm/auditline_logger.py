"""EXPERIMENTAL: a generic_api logger for LiteLLM that does not drop events it could not send.

LiteLLM 1.106.2's GenericAPILogger clears its whole queue after every POST
(`finally: self.log_queue.clear()`), so (a) a batch the endpoint refuses is lost and
(b) every payload queued while a POST is in flight is lost too, even when the POST
succeeds (docs/litellm.md §7.1). This subclass keeps the same wire format (json_array
POST of StandardLoggingPayload objects, same headers) but:

  * sends a snapshot of the queue and removes exactly the sent events on 2xx;
  * on failure raises, so CustomBatchLogger.flush_queue keeps them for the next flush
    (bounded by max_queue_size, oldest dropped first, with a warning);
  * never flushes outside the flush lock (LiteLLM's inline flush at batch_size does).

The receiver must therefore be idempotent (auditline dedups on id + status).

Use (instead of the named generic_api callback):

    litellm_settings:
      callbacks: ["auditline_logger.handler"]     # this file, next to config.yaml

with AUDITLINE_LITELLM_ENDPOINT and AUDITLINE_LITELLM_AUTH ("Bearer <token>") in the
environment. Not used by deploy/litellm/config.yaml: whether auditline ships LiteLLM-side
code is a design decision (DESIGN.md §7 says configuration only).
"""

import os

from litellm._logging import verbose_logger
from litellm.integrations.generic_api.generic_api_callback import GenericAPILogger
from litellm.litellm_core_utils.safe_json_dumps import safe_dumps


class AuditlineLogger(GenericAPILogger):
    preserve_events_added_during_flush = True

    async def _enqueue(self, payload):
        if payload is None:
            return
        self.log_queue.append(payload)
        if len(self.log_queue) >= self.batch_size:
            await self.flush_queue()  # under the lock, unlike the parent's inline flush

    async def async_log_success_event(self, kwargs, response_obj, start_time, end_time):
        if self.event_types is None or "llm_api_success" in self.event_types:
            await self._enqueue(kwargs.get("standard_logging_object"))

    async def async_log_failure_event(self, kwargs, response_obj, start_time, end_time):
        if self.event_types is None or "llm_api_failure" in self.event_types:
            await self._enqueue(kwargs.get("standard_logging_object"))

    async def async_send_batch(self):
        # Called by flush_queue with the lock held; flush_queue deletes the first n events
        # (n = queue length before this call) on return and keeps them all if we raise.
        if not self.log_queue:
            return
        batch = list(self.log_queue)
        response = await self._post_with_retries(data=safe_dumps(batch))
        verbose_logger.debug("Auditline logger: sent %s events, status %s", len(batch), response.status_code)


handler = AuditlineLogger(
    endpoint=os.environ.get("AUDITLINE_LITELLM_ENDPOINT", "http://127.0.0.1:8080/v1/litellm"),
    headers={"Authorization": os.environ.get("AUDITLINE_LITELLM_AUTH", "")},
    log_format="json_array",
    max_retries=int(os.environ.get("AUDITLINE_LITELLM_MAX_RETRIES", "0")),
    retry_delay=float(os.environ.get("AUDITLINE_LITELLM_RETRY_DELAY", "0.5")),
    timeout=float(os.environ.get("AUDITLINE_LITELLM_TIMEOUT", "10")),
)

"""Seed example: track the cost of every call, streaming and not (``docs/logging.md``).

``kwargs["response_cost"]`` is computed by the proxy from the upstream's reported usage (for a
stream, from its final usage chunk) and the price table or the deployment's
``input_cost_per_token`` / ``output_cost_per_token``. It is ``None`` for a model without a price,
``0.0`` for a cache hit.

    litellm_settings:
      success_callback: handlers.cost_tracking.track_cost_callback
"""


# Step 1. Write your custom callback function
def track_cost_callback(
    kwargs,  # kwargs to completion
    completion_response,  # response from completion
    start_time, end_time  # start/end time
):
    try:
        response_cost = kwargs["response_cost"]  # the proxy calculates response cost for you
        print("regular response_cost", response_cost)
    except Exception:
        pass

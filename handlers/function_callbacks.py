"""Seed examples: plain functions as logging callbacks (``docs/logging.md``).

    litellm_settings:
      input_callback: handlers.function_callbacks.get_transformed_inputs
      success_callback:
        - handlers.function_callbacks.custom_callback
        - handlers.function_callbacks.async_test_logging_fn
        - handlers.function_callbacks.log_metadata
      failure_callback: handlers.function_callbacks.custom_callback

Sync functions run in worker threads, async ones on the proxy's event loop; neither delays the
answer. A path that does not resolve, or a function the proxy cannot call with
``(kwargs, completion_response, start_time, end_time)``, stops startup with a message naming it.
"""


def custom_callback(
    kwargs,  # kwargs to completion
    completion_response,  # response from completion
    start_time, end_time  # start/end time
):
    # Your custom code here
    print("LITELLM: in custom callback function")
    print("kwargs", kwargs)
    print("completion_response", completion_response)
    print("start_time", start_time)
    print("end_time", end_time)


async def async_test_logging_fn(kwargs, completion_obj, start_time, end_time):
    print("On Async Success!")


def get_transformed_inputs(
    kwargs,
):
    params_to_model = kwargs["additional_args"]["complete_input_dict"]
    print("params to model", params_to_model)


def log_metadata(
    kwargs,  # kwargs to completion
    completion_response,  # response from completion
    start_time, end_time  # start/end time
):
    # the request's "metadata" (e.g. extra_body={"metadata": {"hello": "world"}} with the OpenAI SDK)
    print(kwargs["litellm_params"]["metadata"])


def complete_streaming_response(
    kwargs,  # kwargs to completion
    completion_response,  # response from completion
    start_time, end_time  # start/end time
):
    # print(f"streaming response: {completion_response}")
    if "complete_streaming_response" in kwargs:
        print(f"Complete Streaming Response: {kwargs['complete_streaming_response']}")

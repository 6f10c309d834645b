"""Ray Serve applications (gateway, retrieval, vLLM): not built yet."""

"""Control-plane actors (tenants, keys, quotas, GPU broker, registry, scheduler, audit): not built yet."""

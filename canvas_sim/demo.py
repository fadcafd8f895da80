"""The simulator as the tool's demo platform: what `kurspakke demo`, the browser tests and the benchmarks register.

The one module of canvas_sim that knows the tool's domain: it turns a SimConfig into the tool's demo data."""

from __future__ import annotations

from canvas_sim.config import SimConfig
from kurspakke.services.demo import DemoPlatform, DemoUser
from kurspakke.services.platforms import platform_instance


def demo_platform(config: SimConfig) -> DemoPlatform:
    return DemoPlatform(
        issuer=config.effective_issuer,
        client_id=config.client_id,
        deployment_id=config.deployment_id,
        auth_login_url=config.auth_login_url,
        auth_token_url=config.token_url,
        key_set_url=config.base + "/api/lti/security/jwks",
        frame_origin=config.base,
        platform_instance=platform_instance(config.effective_issuer, config.platform_guid),
        context_id=config.context_id,
        canvas_course_id=str(config.course_id),
        course_title=config.course_title,
    )


def demo_users(config: SimConfig) -> list[DemoUser]:
    return [DemoUser(u.key, u.name, u.email, u.canvas_user_id, u.sub) for u in config.users]

"""The worker's certificate steps: evaluate (issue when eligible), tell the holder by e-mail, post completion to
Canvas's gradebook (AGS), and the nightly sweep that evaluates everyone still without a certificate."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from course_sync.ags import AgsRefused, AgsRetryable, ags_available, ensure_line_item, post_completion
from course_sync.lti_services import LtiServiceError, ToolServiceConnector
from course_sync.provisioning import StepContext
from course_sync.worker import StepKind
from kurspakke.certificates.codes import format_code
from kurspakke.certificates.models import Certificate, CertificateRole
from kurspakke.certificates.requests import CERTIFICATE_EVALUATE, request_evaluation
from kurspakke.certificates.services import CERTIFICATE_AGS, CERTIFICATE_NOTIFY, evaluate, people_without_certificates
from kurspakke.db import transaction
from kurspakke.mail import InvalidMail, MailError
from kurspakke.models import CourseLink, IdentityKind, Person, PersonIdentity, Registration, utcnow
from kurspakke.notices import certificate_message
from kurspakke.outbox.services import StepPark, StepRetry, enqueue
from kurspakke.programmes import programmes_once

log = logging.getLogger("kurspakke.certificates")

# The "Kursbevis" line item: Canvas shows it to students as an assignment of that name (docs/INSTALL-CANVAS.md).
LINE_ITEM_TAG = "kursbevis"
LINE_ITEM_MAXIMUM = 1.0

ConnectorFor = Callable[[Registration], ToolServiceConnector]


@dataclass(frozen=True)
class CertificateSteps:
    """What the certificate steps need beside the step context: e-mail delivery (None: log instead), the address
    of the verification page, and LTI service connectors for AGS (None: AGS is not set up in this process)."""

    send: Callable[..., None] | None
    base_url: str
    connector_for: ConnectorFor | None

    def kinds(self) -> dict[str, StepKind]:
        return {
            CERTIFICATE_EVALUATE: StepKind(evaluate_step),
            CERTIFICATE_NOTIFY: StepKind(self.notify),
            CERTIFICATE_AGS: StepKind(self.post_to_gradebook),
        }

    def notify(self, ctx: StepContext, payload: dict[str, Any]) -> None:
        """The holder's e-mail: the certificate is ready, where to download it, and its verification address."""
        cert_id = payload.get("certificate_id")
        if not isinstance(cert_id, int):
            raise StepPark("the step names no certificate")
        message = None
        with transaction(ctx.read()) as session:
            cert = session.get(Certificate, cert_id)
            person = session.get(Person, cert.person_id) if cert is not None and cert.person_id else None
            programme = programmes_once().get(cert.programme_id) if cert is not None else None
            if cert is not None and cert.valid and person is not None and programme is not None:
                message = certificate_message(
                    name=cert.name,
                    email=person.email,
                    programme=programme,
                    code=format_code(cert.code),
                    verify_url=f"{self.base_url}/verify/{cert.code}",
                    mentor=cert.role is CertificateRole.MENTOR,
                )
        if message is not None:
            if self.send is None:
                log.info("e-mail to %s: %s\n%s", message.to, message.subject, message.text)
            else:
                try:
                    self.send(to=message.to, subject=message.subject, text=message.text)
                except InvalidMail as exc:
                    raise StepPark(f"the e-mail cannot be sent: {exc}") from exc
                except MailError as exc:
                    raise StepRetry(f"the e-mail could not be delivered: {exc}") from exc
        with transaction(ctx.sessions) as session:
            ctx.finish(session)

    def post_to_gradebook(self, ctx: StepContext, payload: dict[str, Any]) -> None:
        """Completion to the "Kursbevis" line item of each linked course whose platform granted the AGS line-item
        and score scopes and where the holder has launched (their LTI user id is known). Nothing to do otherwise:
        the nightly sweep asks again for certificates not yet posted once the holder has launched."""
        cert_id = payload.get("certificate_id")
        if not isinstance(cert_id, int):
            raise StepPark("the step names no certificate")
        with transaction(ctx.read()) as session:
            cert = session.get(Certificate, cert_id)
            targets = _targets(session, cert) if cert is not None and cert.valid else []
        posted = False
        for link_id, registration, lineitems_url, lineitem_url, sub in targets:
            if self.connector_for is None:
                break
            connector = self.connector_for(registration)
            ctx.keep_lease()
            try:
                if lineitem_url is None:
                    lineitem_url = ensure_line_item(
                        connector,
                        lineitems_url,
                        label="Kursbevis",
                        tag=LINE_ITEM_TAG,
                        resource_id=f"{LINE_ITEM_TAG}:{cert.programme_id}" if cert else LINE_ITEM_TAG,
                        score_maximum=LINE_ITEM_MAXIMUM,
                    )
                    with transaction(ctx.sessions) as session:
                        row = session.get(CourseLink, link_id)
                        if row is not None and row.ags_lineitems_url == lineitems_url:
                            row.ags_lineitem_url = lineitem_url
                assert cert is not None
                post_completion(connector, lineitem_url, user_id=sub, timestamp=cert.issued_at)
                posted = True
            except AgsRetryable as exc:
                raise StepRetry(f"Canvas's gradebook could not be reached: {exc}") from exc
            except LtiServiceError as exc:
                raise StepRetry(f"no AGS access token: {exc}") from exc
            except AgsRefused as exc:
                raise StepPark(f"Canvas refused the completion: {exc}") from exc
        with transaction(ctx.sessions) as session:
            if posted:
                done = session.get(Certificate, cert_id)
                if done is not None:
                    done.ags_posted_at = utcnow()
            ctx.finish(session)


def _targets(session: Any, cert: Certificate) -> list[tuple[int, Registration, str, str | None, str]]:
    if cert.role is not CertificateRole.PARTICIPANT or cert.person_id is None:
        return []
    links = session.scalars(
        select(CourseLink).where(
            CourseLink.programme_id == cert.programme_id,
            CourseLink.ags_lineitems_url.is_not(None),
            CourseLink.ags_registration_id.is_not(None),
        )
    ).all()
    found = []
    for link in links:
        registration = session.get(Registration, link.ags_registration_id)
        if registration is None or not ags_available(link.ags_scopes or []) or link.ags_lineitems_url is None:
            continue
        sub = session.scalar(
            select(PersonIdentity.value).where(
                PersonIdentity.person_id == cert.person_id,
                PersonIdentity.kind == IdentityKind.LTI_SUB,
                PersonIdentity.scope == registration.issuer,
            )
        )
        if sub is not None:
            session.expunge(registration)
            found.append((link.id, registration, link.ags_lineitems_url, link.ags_lineitem_url, sub))
    return found


def evaluate_step(ctx: StepContext, payload: dict[str, Any]) -> None:
    """Step ``certificate.evaluate``: issue to each of the people who is eligible and has none."""
    programme = programmes_once().get(payload.get("programme_id"))  # type: ignore[arg-type]
    person_ids = payload.get("person_ids")
    if programme is None:
        raise StepPark(f"certificate evaluation for unknown programme {payload.get('programme_id')!r}")
    if not isinstance(person_ids, list) or not all(isinstance(i, int) for i in person_ids):
        raise StepPark("the step names no people")
    with transaction(ctx.sessions) as session:
        result = evaluate(session, programme, person_ids, actor="kurspakke worker")
        ctx.finish(session)
    if result.issued:
        log.info("%d certificate(s) issued (%s)", result.issued, programme.id)


def sweep_job(ctx: StepContext) -> dict[str, Any]:
    """Nightly: ask for an evaluation of everyone who could earn a certificate and has none (a change that did not
    reach the worker, a rule that became true by time), and a gradebook post for certificates whose holder has
    launched since."""
    asked = 0
    with transaction(ctx.sessions) as session:
        for programme in programmes_once().values():
            people = people_without_certificates(session, programme)
            request_evaluation(session, programme.id, people)
            asked += len(people)
        unposted = session.execute(
            select(Certificate.id, Certificate.programme_id).where(
                Certificate.ags_posted_at.is_(None),
                Certificate.revoked_at.is_(None),
                Certificate.superseded_at.is_(None),
                Certificate.role == CertificateRole.PARTICIPANT,
                Certificate.person_id.in_(
                    select(PersonIdentity.person_id).where(PersonIdentity.kind == IdentityKind.LTI_SUB)
                ),
                Certificate.programme_id.in_(
                    select(CourseLink.programme_id).where(CourseLink.ags_lineitems_url.is_not(None))
                ),
            )
        ).all()
        for cert_id, programme_id in unposted:
            enqueue(session, CERTIFICATE_AGS, f"certificate-ags:{programme_id}", {"certificate_id": cert_id})
    return {"asked": asked, "gradebook": len(unposted)}


__all__ = ["LINE_ITEM_TAG", "CertificateSteps", "evaluate_step", "sweep_job"]

"""State changes of appeals, each in one transaction with its audit.

access: a decision's reference and the person's access code; portal: signing in, with the
lockout and the rate limit; filing: filing, review starting, withdrawal; deciding: the senior's
result."""

from appeals.services.access import IssuedCode, access_code_issue, reference_ensure
from appeals.services.deciding import appeal_resolve
from appeals.services.filing import (
    Appealability,
    appeal_file,
    appeal_review_started,
    appeal_withdraw,
    appealability,
    check_input,
)
from appeals.services.portal import SignIn, portal_sign_in, portal_signed_out

__all__ = [
    "Appealability",
    "IssuedCode",
    "SignIn",
    "access_code_issue",
    "appeal_file",
    "appeal_resolve",
    "appeal_review_started",
    "appeal_withdraw",
    "appealability",
    "check_input",
    "portal_sign_in",
    "portal_signed_out",
    "reference_ensure",
]

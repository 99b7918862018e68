"""Reading a role's variable files as Ansible does, for the tests of role templates."""
from ansible.template import trust_as_template


def trust(value):
    """Mark the role files' strings as templates, as Ansible does for files of a role."""
    if isinstance(value, str):
        return trust_as_template(value)
    if isinstance(value, dict):
        return {key: trust(item) for key, item in value.items()}
    if isinstance(value, list):
        return [trust(item) for item in value]
    return value


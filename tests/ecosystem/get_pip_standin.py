"""Stand-in for the get-pip.py that ``ansible-test --venv`` downloads.

ansible-test bootstraps pip into each of its virtual environments by running a get-pip.py
script fetched from ci-files.testing.ansible.com, which this project's machines cannot reach.
tests/run.sh copies this file to ~/.ansible/test/cache/get_pip_<version>.py when that file is
missing. It does what get-pip.py does, from the package index pip is configured with: install
Python's bundled pip (ensurepip), then the exact pip that ansible-test asked for.

ansible-test runs it as ``python get_pip_X.py --disable-pip-version-check pip==X
[--no-setuptools] [--no-wheel]``.
"""

import subprocess
import sys

GET_PIP_ONLY = ('--no-setuptools', '--no-wheel')


def main():
    args = [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY]
    subprocess.check_call([sys.executable, '-m', 'ensurepip', '--default-pip'])
    subprocess.check_call([sys.executable, '-m', 'pip', 'install', '--quiet'] + args)


if __name__ == '__main__':
    main()

# python3: the Python 3 interpreter with its standard library (all under /usr).
#   sandbox run --profile python3 --ro IN --rw OUT -- python3 IN/script.py
@include exec.policy
@ro /usr
@ro /bin
@ro /lib
@ro-if-exists /lib64
@dev
@env PYTHONDONTWRITEBYTECODE=1
@limit mem 1G

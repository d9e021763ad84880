# sqlite3: the SQLite command-line shell, on databases in granted folders.
#   sandbox run --profile sqlite3 --rw OUT -- sqlite3 OUT/db.sqlite 'select 1'
@include exec.policy
@ro /usr
@ro /bin
@ro /lib
@ro-if-exists /lib64
@dev
@env HOME=/tmp

# shell: /bin/sh and the usual command-line tools (coreutils, grep, sed, awk...) from
# the system's /usr, for pipelines over granted files.
#   sandbox run --profile shell --ro IN --rw OUT -- /bin/sh -c 'sort IN/a | uniq -c > OUT/b'
@include exec.policy
@ro /usr
@ro /bin
@ro /lib
@ro-if-exists /lib64
@ro-if-exists /sbin
@dev
@limit pids 64

# poppler: the PDF tools (pdftoppm, pdftotext, pdfinfo, pdfimages...) with fonts and
# their cache.
#   sandbox run --profile poppler --ro IN --rw OUT -- pdftoppm -png IN/doc.pdf OUT/page
@include exec.policy
@ro /usr
@ro /bin
@ro /lib
@ro-if-exists /lib64
@ro-if-exists /etc/fonts
@ro-if-exists /var/cache/fontconfig
@dev
@limit mem 1G

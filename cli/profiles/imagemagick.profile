# imagemagick: ImageMagick's convert, identify, magick... with their configuration
# (the policy.xml that limits resources and coders) and fonts.
#   sandbox run --profile imagemagick --ro IN --rw OUT -- convert IN/a.jpg OUT/a.png
@include exec.policy
@ro /usr
@ro /bin
@ro /lib
@ro-if-exists /lib64
@ro-if-exists /etc/ImageMagick-6
@ro-if-exists /etc/ImageMagick-7
@ro-if-exists /etc/fonts
@dev
@limit mem 1G
@limit tmp 256M

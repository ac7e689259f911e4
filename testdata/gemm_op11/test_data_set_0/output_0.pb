BoutputJ ß!ƒ>üc
¿Ù	¾q?Þ>»pl>þ'¿pY¾‡Ë>